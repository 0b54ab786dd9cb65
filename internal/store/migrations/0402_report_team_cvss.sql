-- The team's own CVSS vector for a report (3.1 or 4.0), saved with its triage; '' until the
-- team scores it. The researcher's vectors stay in cvss31 and cvss40.
ALTER TABLE reports ADD COLUMN team_cvss TEXT NOT NULL DEFAULT '';
