"""Exclusions (R12-R14, R16, R18, R22, R35): the rules that keep people out, and everything
an admin does with one.

`saves` creates, edits, enables and disables a rule, with the guard of a save that removes
people and the unenroll-on-save sweep in the same transaction; `unenroll` the same sweep in
parts, as a job, when it removes many; `preview` the impact shown before a save, with the
people a company rule probably meant but misses (`domain_hints`) and the look-alike
domains it does not cover (`look_alikes`); `reached` the people, companies and
enrollments a rule reaches; `matches` everyone it matches, a page at a time or as CSV;
`in_sequences` which sequences it decides in and which bypass it; `archive` archiving,
restoring and deleting; `history` its change history. The rules as stored and their
cache are the shared tier's `exclusion_rules`, below the decision index."""
