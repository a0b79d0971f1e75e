"""Use-cases, one module per concept. Keyword-only, typed, taking the connection (`db`)
and `now`; the caller opens and commits the transaction."""
