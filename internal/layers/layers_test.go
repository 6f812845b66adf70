package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tandemhq/tandem"

// pkg is the part of `go list -json` this test reads.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

// listPackages runs `go list -json` over the module.
func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(&out)
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module+"/")] = p
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func ours(path string) (string, bool) {
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// under reports whether rel is dir or a package below it.
func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

// engines are the packages below app: they know nothing of HTTP,
// WebSocket or generated types, and nothing of app or the edge.
var engines = []string{"internal/app", "internal/stream", "internal/hub", "internal/store", "internal/broker", "internal/quota", "internal/auth", "internal/ratelimit", "internal/ijson", "internal/schemaerr"}

// transports decode, call app and encode.
var transports = []string{"internal/httpapi", "internal/wsapi"}

// implementations are chosen by cmd only (internal/webhook implements
// app.WebhookSender: it may import app for the port's types, app and the
// transports never import it).
var implementations = []string{"internal/store/sqlite", "internal/store/postgres", "internal/broker/memory", "internal/broker/redis", "internal/webhook"}

// TestImportArrows fails when an arrow of the layering rule is broken.
func TestImportArrows(t *testing.T) {
	pkgs := listPackages(t)
	for rel, p := range pkgs {
		isEngine := slices.ContainsFunc(engines, func(d string) bool { return under(rel, d) })
		isTransport := slices.ContainsFunc(transports, func(d string) bool { return under(rel, d) })
		// Below app, not even transitively: gen/, the SDK (sdk/go/client is generated too), net/http, gorilla.
		if isEngine {
			for _, d := range p.Deps {
				if r, ok := ours(d); ok && (under(r, "gen") || under(r, "sdk")) || d == "net/http" || strings.HasPrefix(d, "github.com/gorilla/") || strings.HasPrefix(d, "github.com/getkin/") {
					t.Errorf("%s depends on %s: the packages below app know nothing of HTTP, WebSocket or generated types", rel, d)
				}
			}
		}
		for _, imp := range p.Imports {
			r, ok := ours(imp)
			if !ok {
				continue
			}
			switch {
			case under(rel, "gen"):
				t.Errorf("generated package %s imports %s: gen/ imports nothing of ours", rel, r)
			case isEngine && !under(rel, "internal/app") && (under(r, "internal/app") || under(r, "internal/wire")):
				t.Errorf("%s imports %s: the engines are below app and the edge", rel, r)
			case isEngine && (under(r, "internal/wire") || slices.Contains(transports, r) || under(r, "cmd")):
				t.Errorf("%s imports %s: app is below the edge and the transports", rel, r)
			case isTransport && (under(r, "internal/broker") || slices.Contains(implementations, r)):
				t.Errorf("transport %s imports %s: transports reach the broker and the stores only through app", rel, r)
			case slices.Contains(implementations, r) && !under(rel, "cmd") && !strings.HasPrefix(rel, r) && !strings.HasSuffix(rel, "test"):
				t.Errorf("%s imports the implementation %s: only cmd chooses implementations", rel, r)
			}
		}
	}
}

// streamVocabulary is what transports may use of internal/stream: its
// words (topics, cursors, events, the sink they implement and the
// admission of replays), never its engines (Resources, Channels, Feed),
// which only app drives.
var streamVocabulary = map[string]bool{
	"Topic": true, "ParseTopic": true, "TopicKind": true, "TopicCollection": true, "TopicResource": true, "TopicChannel": true, "TopicPresence": true,
	"MessagesTopic": true, "PresenceTopic": true, "CollectionTopic": true, "ResourceTopic": true, "Key": true, "ValidChannel": true,
	"Cursor": true, "ParseCursor": true, "Kind": true, "KindResource": true, "KindChannel": true,
	"Composite": true, "IsComposite": true, "ParseComposite": true, "EncodeComposite": true, "ParseCursorFor": true,
	"Event": true, "EventCreated": true, "EventUpdated": true, "EventDeleted": true, "EventSnapshot": true, "EventMessage": true,
	"Result": true, "Start": true, "StartLive": true, "StartSince": true, "StartSnapshot": true,
	"Sink": true, "Replays": true, "NewReplays": true, "MaxReplays": true, "PollMaxBytes": true,
}

// TestTransportsUseStreamVocabularyOnly parses the transports' files and
// fails on any stream identifier outside streamVocabulary, and on any use
// of store.Store (the store is app's).
func TestTransportsUseStreamVocabularyOnly(t *testing.T) {
	pkgs := listPackages(t)
	for _, rel := range transports {
		p, ok := pkgs[rel]
		if !ok {
			t.Fatalf("no package %s", rel)
		}
		fset := token.NewFileSet()
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]string{} // local import name → import path
			for _, im := range f.Imports {
				path, _ := strconv.Unquote(im.Path.Value)
				local := path[strings.LastIndex(path, "/")+1:]
				if im.Name != nil {
					local = im.Name.Name
				}
				names[local] = path
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				id, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch names[id.Name] {
				case module + "/internal/stream":
					if !streamVocabulary[sel.Sel.Name] {
						t.Errorf("%s: %s uses stream.%s: transports drive the engines only through app", fset.Position(sel.Pos()), rel, sel.Sel.Name)
					}
				case module + "/internal/store":
					if sel.Sel.Name == "Store" {
						t.Errorf("%s: %s uses store.Store: transports reach the store only through app", fset.Position(sel.Pos()), rel)
					}
				}
				return true
			})
		}
	}
}
