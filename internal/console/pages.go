package console

// registerPages declares the operator pages beyond the overview. Each reads and changes
// through the API routes named beside it, which decide what the session's role may do.
func (c *Console) registerPages() {
	c.page("GET /tokens", c.tokens)
	c.page("POST /tokens", c.createToken)
	c.page("POST /tokens/{id}/revoke", c.revokeToken)
}
