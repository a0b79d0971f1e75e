"""The emails queued to send and when each is due (R26, R38): queueing the next email of
enrollments at an opening of its sending window (`schedule`), and keeping queued emails
inside their windows after a sequence's schedule is edited or a due time was set without
them (`realign`)."""
