"""Use-cases, one module per concept. Keyword-only, typed, taking the connection (`db`)
and `now`; the caller opens and commits the transaction."""

from optout.db.engine import before_every_commit
from optout.services import decision_index

# Every commit first re-matches the rows its writes queued, so the stored matches that
# commit are true (`decision_index`), whichever code path wrote them.
before_every_commit(decision_index.flush)
