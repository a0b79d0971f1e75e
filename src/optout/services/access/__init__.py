"""Who may do what in a workspace: accounts, sessions and API keys (`accounts`), members
and keys (`members`), invitations (`invitations`), which passwords are refused
(`password_rules`), the limits on failed sign-ins (`sign_in_limits`), and the secrets
kept encrypted in the database: a CRM connection's tokens and DKIM keys (`stored_secrets`)."""
