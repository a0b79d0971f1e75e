"""Background jobs: the rows that say what was asked and how far it got (`store`), a
request checked and queued as a job (`submit`), the steps of each kind of job (`kinds`),
the runner that claims and works through them (`runner`), and the progress of a step
still inside its transaction (`live`)."""
