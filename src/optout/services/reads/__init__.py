"""What the pages, the API and the CLI read and write nothing with: the lists with their
filters (`listing`), the long lists a page at a time (`browse`, on `keyset` pagination),
and the search of people and companies (`search`)."""
