"""Running background jobs: the steps of each kind of job (`kinds`), the runner that claims
and works through them (`runner`), and the progress of a step still inside its
transaction (`live`)."""
