"""Staff kiosk: FastAPI app (enrolment with consent, withdrawal, lane board), staff auth."""
