package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/api"
)

// pageData is what every template receives.
type pageData struct {
	Title   string
	Session *Session // nil when signed out
	Path    string   // the request's path, for marking the current navigation entry
	Now     time.Time
	Data    any
}

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return ""
	},
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"since": since,
	"pct": func(part, whole int) string {
		if whole == 0 {
			return "0 %"
		}
		return fmt.Sprintf("%.1f %%", 100*float64(part)/float64(whole))
	},
	// width is part of whole as a whole percentage, for a bar's width class.
	"width": func(part, whole int) int {
		if whole == 0 || part <= 0 {
			return 0
		}
		w := (100*part + whole - 1) / whole
		return min(w, 100)
	},
	"add":    func(a, b int) int { return a + b },
	"mul100": func(v float64) float64 { return 100 * v },
	"list":   func(v ...string) []string { return v },
	"join":   strings.Join,
	"short": func(id string) string {
		if len(id) > 16 {
			return id[:16] + "…"
		}
		return id
	},
	"or": func(v, alt string) string {
		if v == "" {
			return alt
		}
		return v
	},
	// qs returns the query q with key set to value (removed when value is ""), and the
	// cursor dropped, as a URL query for a link: a filter or sort change starts at page one.
	"qs": func(q url.Values, kv ...string) string {
		out := url.Values{}
		for k, v := range q {
			if k != "after" {
				out[k] = v
			}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				out.Del(kv[i])
			} else {
				out.Set(kv[i], kv[i+1])
			}
		}
		if len(out) == 0 {
			return "?"
		}
		return "?" + out.Encode()
	},
	"pathesc":  url.PathEscape,
	"queryesc": url.QueryEscape,
}

// since says how long ago t was, in the largest whole unit.
func since(now time.Time, t any) string {
	var at time.Time
	switch v := t.(type) {
	case time.Time:
		at = v
	case *time.Time:
		if v != nil {
			at = *v
		}
	}
	if at.IsZero() {
		return "never"
	}
	return duration(now.Sub(at)) + " ago"
}

func duration(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// parsePages parses each page of dir (templates/, or research/ for the portal) in fsys with
// the folder's layout.html around it, with the template functions of fm.
func parsePages(fsys fs.FS, dir string, fm ...template.FuncMap) (map[string]*template.Template, error) {
	base := template.New("").Funcs(funcs)
	for _, m := range fm {
		base = base.Funcs(m)
	}
	base, err := base.ParseFS(fsys, dir+"/layout.html")
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(fsys, dir+"/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(fsys, f)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page with the layout around it. It renders into a buffer first, so that a
// template error is a clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, s *Session, title string, data any) {
	t, ok := c.pages[page]
	if !ok {
		c.log.Error("console: no such template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pageData{Title: title, Session: s, Path: r.URL.Path, Now: c.now().UTC(), Data: data}); err != nil {
		c.log.Error("console: render failed", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type errorData struct {
	Status  int
	Heading string
	Message string
}

// errorPage is what a page shows for err: the API's status and sentence under a plain heading.
// A fault (500 and above) is logged, with who (the console or the portal) met it.
func (c *Console) errorPage(r *http.Request, who string, err error) errorData {
	e := api.AsError(err)
	if e.Status >= 500 {
		c.log.Error(who+" request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	heading := http.StatusText(e.Status)
	switch e.Status {
	case http.StatusForbidden:
		heading = "Not allowed"
	case http.StatusNotFound:
		heading = "Not found"
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		heading = "That did not work"
	case http.StatusConflict:
		heading = "Not now"
	}
	return errorData{Status: e.Status, Heading: heading, Message: e.Message}
}

// renderError shows a refusal or a fault on a page of its own, with the status the API gave:
// the API's own sentence for a refusal, "internal error" for a fault (logged).
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *Session, err error) {
	d := c.errorPage(r, "console", err)
	c.render(w, r, d.Status, "error", s, d.Heading, d)
}
