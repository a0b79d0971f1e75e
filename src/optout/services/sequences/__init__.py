"""Sequences (R11, R26): their steps, ruleset, status and audience (`definitions`),
changes after creation (`edits`), a step rendered for a real person (`step_preview`),
and the personas and rulesets a sequence is built on (`personas`, `rulesets`)."""
