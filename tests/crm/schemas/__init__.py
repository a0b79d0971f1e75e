"""What the real CRM APIs accept and answer, to hold the emulators (and the connectors'
requests) to: HubSpot's from its official SDK's models, Salesforce's from its REST API
documentation."""
