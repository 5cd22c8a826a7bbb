"""Demo data for the whole product: see crm.demo.seeding (what is written) and .vocabulary (the words)."""
