"""CSV imports (R23, R34): people, companies, or one column straight into an exclusion
list, each read and checked before any write, then applied set-based, whole or in parts.

`people_files` reads a people file and is the door for a people or companies file
(`check_import`, `apply_checked`); `company_files` and `exclusion_lists` the other kinds;
`csv_files` decodes and parses a file; `apply` applies a checked file whole or in parts;
`write` holds the set-based writes, `json_merge` their custom-field merge in SQL (the CRM
sync uses it too), and `reporting` the report and its error file."""
