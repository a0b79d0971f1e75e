"""The people and companies of a workspace: people and their fields (`people`),
companies (`companies`), a person moving to another company (`company_change`), linking
people to companies by domain (`association`), opportunities and their contacts
(`opportunities`), and the custom fields every record may carry (`custom_fields`)."""
