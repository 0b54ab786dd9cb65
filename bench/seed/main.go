// Command seed fills a Rampart database with a registered fleet for the check-in benchmark: N
// claimed devices in one product's Production group, and certificates (with keys) for the first
// M of them, written as PEM files the load generator presents, and optionally an emergency
// deployment of a signed release to the group, so that every device checks in against real
// director metadata. It registers the devices through store.SeedDevices, without
// audit records, as a test fixture would; it is not part of the product.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/ca/keeper"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run() error {
	data := flag.String("data", "", "the server's data folder (SQLite database and master.key)")
	database := flag.String("database", "", "PostgreSQL URL; default: SQLite under --data")
	tenantName := flag.String("tenant", "default", "tenant to fill")
	productName := flag.String("product", "bench", "product to create the devices in")
	devices := flag.Int("devices", 100_000, "devices to register")
	certs := flag.Int("certs", 256, "devices to give certificates (the load generator's connections)")
	out := flag.String("out", "", "folder for the device certificate files")
	deploy := flag.String("deploy", "", "release (created and signed beforehand) to deploy to the Production group as an emergency, so that every device's director names it")
	flag.Parse()
	if *data == "" || *out == "" {
		return errors.New("--data and --out are required")
	}
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Database: *database, SQLitePath: filepath.Join(*data, "rampart.db")})
	if err != nil {
		return err
	}
	defer s.Close()
	tn, err := s.TenantByName(ctx, *tenantName)
	if err != nil {
		return fmt.Errorf("tenant %s (start the server once first): %w", *tenantName, err)
	}
	p, err := s.ProductByName(ctx, tn.ID, *productName)
	if errors.Is(err, store.ErrNotFound) {
		p, _, err = s.CreateProduct(ctx, store.System, tn.ID, *productName, "check-in benchmark fleet")
	}
	if err != nil {
		return err
	}
	g, err := s.GroupByName(ctx, tn.ID, *productName, "Production")
	if err != nil {
		return err
	}
	kekHex, err := os.ReadFile(filepath.Join(*data, "master.key"))
	if err != nil {
		return err
	}
	kek, err := hex.DecodeString(strings.TrimSpace(string(kekHex)))
	if err != nil {
		return err
	}
	k, err := keeper.New(s, kek, func() time.Time { return time.Now().Add(-time.Hour) }, "")
	if err != nil {
		return err
	}
	auth, err := k.Authority(ctx, tn.ID, tn.Name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	start := time.Now()
	ids := make([]string, 0, 1000)
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		err := s.SeedDevices(ctx, tn.ID, p.ID, g.ID, "1.0.0", ids, time.Now())
		ids = ids[:0]
		return err
	}
	for i := range *devices {
		var id string
		if i < *certs {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
			sum := sha256.Sum256(der)
			id = hex.EncodeToString(sum[:])
			cert, err := auth.Issue(id, &key.PublicKey, ca.ProfileNormal, time.Now())
			if err != nil {
				return err
			}
			kb, _ := x509.MarshalPKCS8PrivateKey(key)
			pemBytes := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
				pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})...)
			if err := os.WriteFile(filepath.Join(*out, fmt.Sprintf("device-%05d.pem", i)), pemBytes, 0o600); err != nil {
				return err
			}
		} else {
			var b [32]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		ids = append(ids, id)
		if len(ids) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
		if (i+1)%20000 == 0 {
			fmt.Fprintf(os.Stderr, "seed: %d/%d devices\n", i+1, *devices)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if *deploy != "" {
		plan, err := rollout.NewPlan([]float64{100}, 0, 0)
		if err != nil {
			return err
		}
		if _, err := s.CreateDeployment(ctx, store.System, tn.ID, store.DeploymentSpec{Product: *productName, Group: "Production",
			Release: *deploy, Plan: plan, Criteria: rollout.DefaultCriteria(), Emergency: true}); err != nil {
			return fmt.Errorf("deploy %s: %w", *deploy, err)
		}
	}
	fmt.Fprintf(os.Stderr, "seed: %d devices registered, %d certificates in %s, in %s\n", *devices, *certs, *out, time.Since(start).Round(time.Millisecond))
	return nil
}
