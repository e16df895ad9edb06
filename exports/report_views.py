"""Trial reports: CONSORT flow, recruitment, follow-up, completeness, fidelity."""

urlpatterns = []
