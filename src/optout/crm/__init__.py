"""CRM sync (R31, R32, R33): connectors for HubSpot and Salesforce behind one narrow port,
field mappings, the incremental sync engine, write-backs and pushed changes (webhooks)."""
