package console

// registerPages declares the operator pages beyond the overview. Each reads and changes
// through the API routes named beside it, which decide what the session's role may do.
func (c *Console) registerPages() {
	c.page("GET /devices", c.devices)                                    // GET /api/v1/devices, /products, /products/{p}/groups
	c.page("GET /devices/{id}", c.device)                                // GET /api/v1/devices/{id} and its attestations, installs, crashes, audit
	c.page("GET /releases", c.releases)                                  // GET /api/v1/products, /products/{p}/releases, /fleet?product=
	c.page("GET /releases/{product}/{version}", c.release)               // GET /api/v1/products/{p}/releases/{v}
	c.page("POST /releases/{product}/{version}/revoke", c.revokeRelease) // POST /api/v1/products/{p}/releases/{v}/revoke
	c.page("GET /deployments", c.deployments)                            // GET /api/v1/deployments
	c.page("GET /deployments/new", c.newDeployment)                      // GET /api/v1/products, /products/{p}/groups
	c.page("POST /deployments", c.createDeployment)                      // POST /api/v1/deployments
	c.page("GET /deployments/{id}", c.deployment)                        // GET /api/v1/deployments/{id}
	c.page("GET /deployments/{id}/events", c.deploymentEvents)           // the same, as server-sent events
	c.page("POST /deployments/{id}/{action}", c.actOnDeployment)         // POST /api/v1/deployments/{id}/{action}
	c.page("GET /coverage", c.coveragePage)                              // GET /api/v1/coverage, /coverage/series
	c.page("GET /crashes", c.crashes)                                    // GET /api/v1/failures
	c.page("GET /crashes/{id}", c.crash)                                 // GET /api/v1/failures/{id}
	c.page("POST /crashes/{id}/resolve", c.resolveCrash)                 // POST /api/v1/failures/{id}/resolve
	c.page("GET /audit", c.audit)                                        // GET /api/v1/audit?order=newest
	c.page("GET /audit/verify", c.verifyAudit)                           // GET /api/v1/audit/verify
	c.page("GET /reports", c.reports)                                    // GET /api/v1/reports, /programs
	c.page("GET /reports/{number}", c.report)                            // GET /api/v1/reports/{n}, its comments, events, ledger, award preview; /cvss
	c.page("POST /reports/{number}/triage", c.triageReport)              // POST /api/v1/reports/{n}/triage
	c.page("POST /reports/{number}/comments", c.commentReport)           // POST /api/v1/reports/{n}/comments
	c.page("POST /reports/{number}/award", c.awardReport)                // POST /api/v1/reports/{n}/award
	c.page("POST /reports/{number}/fix", c.linkFix)                      // POST /api/v1/reports/{n}/fix
	c.page("POST /reports/{number}/advisory", c.exportAdvisory)          // POST /api/v1/reports/{n}/advisory
	c.page("GET /programs", c.programs)                                  // GET /api/v1/programs
	c.page("GET /programs/{program}", c.programReport)                   // GET /api/v1/programs/{p}/report
	c.page("GET /tokens", c.tokens)
	c.page("POST /tokens", c.createToken)
	c.page("POST /tokens/{id}/revoke", c.revokeToken)
}
