"""Sequences (R11, R26): their steps, ruleset, status and audience (`definitions`),
changes after creation (`edits`), a step rendered for a real person (`step_preview`),
the audiences, personas and rulesets a sequence is built on (`audiences`, `personas`,
`rulesets`), and the setting of a sequence that enrolls by itself (`auto_enroll`)."""
