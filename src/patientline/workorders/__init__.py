"""Work orders: callbacks, complaints under supervision, feedback and service requests."""
