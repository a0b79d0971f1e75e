"""Enrollments (R13, R16, R17, R29, R30): putting people in sequences and taking them out.

`enrolling` enrolls the eligible among the people asked about (with a mailbox each and
their first step queued), unenrolls, and unenrolls in bulk as a job; `by_hand` enrolls
addresses or a filter typed by an admin, with a report of who was left out and why;
`refusals` keeps one event per refused person, naming the first check that stopped them;
`refresh` enrolls a sequence's audience in one pass and reads the "not enrolled" view;
`in_doubt` holds, releases or cancels the emails whose delivery is in doubt after a crash;
`automatic` is the pass that enrolls who a sequence enrolling by itself has queued,
`automatic_view` what its page shows of it, and `automatic_outlook` whether the next pass
enrolls one person. The enrollment queue itself (`enrollment_queue`) is in the shared tier
at the root: the decision index's flush fills it."""
