"""Patients: the local patient index, identification and verification, the HIS port and its adapters
(FHIR R4, HL7 v2 over MLLP, the demo simulator), results, privacy (every read through `access`)."""
