package client

import (
	"context"
	"net/url"
)

// WhoAmI describes the token the client uses.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var out WhoAmI
	return out, c.Do(ctx, "GET", "/api/v1/whoami", nil, &out)
}

// CreateTenant creates a tenant (service administrators only).
func (c *Client) CreateTenant(ctx context.Context, req CreateTenantRequest) (Tenant, error) {
	var out Tenant
	return out, c.Do(ctx, "POST", "/api/v1/tenants", req, &out)
}

// ListTenants lists tenants (service administrators only).
func (c *Client) ListTenants(ctx context.Context, o ListOptions) (List[Tenant], error) {
	var out List[Tenant]
	return out, c.Do(ctx, "GET", "/api/v1/tenants"+listQuery(o, nil), nil, &out)
}

// CreateToken creates a token; its secret is in the answer's Secret field and nowhere else.
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (Token, error) {
	var out Token
	return out, c.Do(ctx, "POST", "/api/v1/tokens", req, &out)
}

// ListTokens lists the caller's tenant's tokens.
func (c *Client) ListTokens(ctx context.Context, o ListOptions) (List[Token], error) {
	var out List[Token]
	return out, c.Do(ctx, "GET", "/api/v1/tokens"+listQuery(o, nil), nil, &out)
}

// RevokeToken revokes one of the caller's tenant's tokens.
func (c *Client) RevokeToken(ctx context.Context, id string) (Token, error) {
	var out Token
	return out, c.Do(ctx, "DELETE", "/api/v1/tokens/"+esc(id), nil, &out)
}

// CreateProduct creates a product and its default groups.
func (c *Client) CreateProduct(ctx context.Context, req CreateProductRequest) (Product, error) {
	var out Product
	return out, c.Do(ctx, "POST", "/api/v1/products", req, &out)
}

// ListProducts lists the tenant's products.
func (c *Client) ListProducts(ctx context.Context, o ListOptions) (List[Product], error) {
	var out List[Product]
	return out, c.Do(ctx, "GET", "/api/v1/products"+listQuery(o, nil), nil, &out)
}

// GetProduct returns a product with its groups.
func (c *Client) GetProduct(ctx context.Context, name string) (Product, error) {
	var out Product
	return out, c.Do(ctx, "GET", "/api/v1/products/"+esc(name), nil, &out)
}

// CreateGroup creates a device group in a product.
func (c *Client) CreateGroup(ctx context.Context, product string, req CreateGroupRequest) (Group, error) {
	var out Group
	return out, c.Do(ctx, "POST", "/api/v1/products/"+esc(product)+"/groups", req, &out)
}

// ListGroups lists a product's device groups.
func (c *Client) ListGroups(ctx context.Context, product string, o ListOptions) (List[Group], error) {
	var out List[Group]
	return out, c.Do(ctx, "GET", "/api/v1/products/"+esc(product)+"/groups"+listQuery(o, nil), nil, &out)
}

// GetGroup returns one device group of a product.
func (c *Client) GetGroup(ctx context.Context, product, name string) (Group, error) {
	var out Group
	return out, c.Do(ctx, "GET", "/api/v1/products/"+esc(product)+"/groups/"+esc(name), nil, &out)
}

// ListDevices lists the tenant's devices.
func (c *Client) ListDevices(ctx context.Context, f DeviceFilter, o ListOptions) (List[Device], error) {
	var out List[Device]
	q := url.Values{"product": {f.Product}, "group": {f.Group}, "release": {f.Release}, "attestation": {f.Attestation},
		"seen": {f.Seen}, "q": {f.IDPrefix}, "sort": {f.Sort}}
	if f.UpdateOnly {
		q.Set("update_only", "true")
	}
	return out, c.Do(ctx, "GET", "/api/v1/devices"+listQuery(o, q), nil, &out)
}

// GetDevice returns one of the tenant's devices.
func (c *Client) GetDevice(ctx context.Context, id string) (Device, error) {
	var out Device
	return out, c.Do(ctx, "GET", "/api/v1/devices/"+esc(id), nil, &out)
}

// ListAudit lists the tenant's audit records in chain order.
func (c *Client) ListAudit(ctx context.Context, action string, o ListOptions) (List[AuditRecord], error) {
	var out List[AuditRecord]
	return out, c.Do(ctx, "GET", "/api/v1/audit"+listQuery(o, url.Values{"action": {action}}), nil, &out)
}

// VerifyAudit asks the server to check the tenant's whole audit chain.
func (c *Client) VerifyAudit(ctx context.Context) (AuditVerification, error) {
	var out AuditVerification
	return out, c.Do(ctx, "GET", "/api/v1/audit/verify", nil, &out)
}

// GetCA returns the tenant's certificate authority.
func (c *Client) GetCA(ctx context.Context) (CA, error) {
	var out CA
	return out, c.Do(ctx, "GET", "/api/v1/ca", nil, &out)
}

// ClaimDevice claims an enrolled device into a product and group.
func (c *Client) ClaimDevice(ctx context.Context, id string, req ClaimDeviceRequest) (Device, error) {
	var out Device
	return out, c.Do(ctx, "POST", "/api/v1/devices/"+esc(id)+"/claim", req, &out)
}

// MoveDevice moves a claimed device to another group of its product.
func (c *Client) MoveDevice(ctx context.Context, id string, req MoveDeviceRequest) (Device, error) {
	var out Device
	return out, c.Do(ctx, "POST", "/api/v1/devices/"+esc(id)+"/move", req, &out)
}

// ListAttestations returns a device's attestation results, newest first.
func (c *Client) ListAttestations(ctx context.Context, id string) (List[Attestation], error) {
	var out List[Attestation]
	return out, c.Do(ctx, "GET", "/api/v1/devices/"+esc(id)+"/attestations", nil, &out)
}

// Preauthorize preauthorises a device by its EK or identity-key hash.
func (c *Client) Preauthorize(ctx context.Context, req PreauthorizeRequest) error {
	return c.Do(ctx, "POST", "/api/v1/preauthorizations", req, nil)
}

// SetManufacturerCAs replaces the TPM manufacturer CAs the tenant trusts.
func (c *Client) SetManufacturerCAs(ctx context.Context, pem string) error {
	return c.Do(ctx, "PUT", "/api/v1/manufacturer-cas", ManufacturerCAs{PEM: pem}, nil)
}

// SetAttestationPolicy sets a product's attestation policy.
func (c *Client) SetAttestationPolicy(ctx context.Context, product string, p AttestationPolicy) error {
	return c.Do(ctx, "PUT", "/api/v1/products/"+esc(product)+"/attestation-policy", p, nil)
}

// GetAttestationPolicy returns a product's attestation policy.
func (c *Client) GetAttestationPolicy(ctx context.Context, product string) (AttestationPolicy, error) {
	var out AttestationPolicy
	return out, c.Do(ctx, "GET", "/api/v1/products/"+esc(product)+"/attestation-policy", nil, &out)
}

// GetManufacturerCAs returns the TPM manufacturer CAs the tenant trusts.
func (c *Client) GetManufacturerCAs(ctx context.Context) (ManufacturerCAs, error) {
	var out ManufacturerCAs
	return out, c.Do(ctx, "GET", "/api/v1/manufacturer-cas", nil, &out)
}
