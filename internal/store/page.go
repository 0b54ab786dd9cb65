package store

import (
	"strconv"
)

// MaxPageSize caps every listing; DefaultPageSize applies when the caller gives none.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Page asks for one page of a listing: up to Limit items after the cursor After, which is the
// value returned as "next" by the previous page ("" for the first page).
type Page struct {
	Limit int
	After string
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageSize
	case p.Limit > MaxPageSize:
		return MaxPageSize
	}
	return p.Limit
}

func (p Page) afterInt() (int64, error) {
	if p.After == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(p.After, 10, 64)
	if err != nil || v < 0 {
		return 0, invalid("the after cursor is not one this server issued; start from the first page")
	}
	return v, nil
}

// trimPage drops the extra row fetched to learn whether another page follows, and returns the
// cursor of that next page.
func trimPage[T any](items []T, p Page, key func(T) string) ([]T, string) {
	if len(items) <= p.limit() {
		return items, ""
	}
	items = items[:p.limit()]
	return items, key(items[len(items)-1])
}
