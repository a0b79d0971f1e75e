"""Enrollments (R13, R16, R17, R29, R30): putting people in sequences and taking them out.

`enrolling` enrolls the eligible among the people asked about (with a mailbox each and
their first step queued), unenrolls, and unenrolls in bulk as a job; `by_hand` enrolls
addresses or a filter typed by an admin, with a report of who was left out and why;
`refusals` keeps one event per refused person, naming the first check that stopped them;
`refresh` enrolls a sequence's audience in one pass and reads the "not enrolled" view;
`in_doubt` holds, releases or cancels the emails whose delivery is in doubt after a crash.
Automatic enrollment (`automatic_enrollment`) and the enrollment queue stay at the root."""
