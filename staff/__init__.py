"""Staff and trial administration in the app: invitations, roles per site, accounts, and the
trial's set-up settings and status, for the trial administrator, through the gate."""
