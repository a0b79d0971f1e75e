"""Local emulators of the HubSpot and Salesforce APIs: stateful FastAPI apps that speak
the same endpoints and JSON (or SOAP) shapes, served over real HTTP in tests."""
