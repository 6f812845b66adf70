package store

import (
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	ok := fstest.MapFS{
		"m/002_b.sql": {Data: []byte("B")},
		"m/001_a.sql": {Data: []byte("A")},
		"m/010_c.sql": {Data: []byte("C")},
		"other/x.txt": {Data: []byte("ignored: another folder")},
	}
	ms, err := LoadMigrations(ok, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0] != (Migration{1, "001_a.sql", "A"}) || ms[1].Version != 2 || ms[2] != (Migration{10, "010_c.sql", "C"}) {
		t.Fatalf("LoadMigrations = %+v", ms)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no number": {"m/a_b.sql": {}},
		"no name":   {"m/001.sql": {}},
		"not sql":   {"m/001_a.txt": {}},
		"duplicate": {"m/001_a.sql": {}, "m/1_b.sql": {}},
		"no folder": {},
	} {
		if ms, err := LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: LoadMigrations = %+v, want an error", name, ms)
		}
	}
}
