package store

import "strings"

// IndexField returns the field a declared index names (CheckIndexes'
// syntax: id, revision, createdAt, updatedAt, labels.<key>, data.<a.b>),
// the same Field the filter language parses (data["a-b"] is data.a-b).
// Errors: CodeInvalid for a name CheckIndexes refuses.
func IndexField(name string) (Field, error) {
	if detail := checkIndexField(name); detail != "" {
		return Field{}, Errorf(CodeInvalid, "%s", detail)
	}
	switch name {
	case "id", "revision", "createdAt", "updatedAt":
		return Field{Root: FieldRoot(name)}, nil
	}
	root, path, _ := strings.Cut(name, ".")
	if root == "labels" {
		return Field{Root: RootLabels, Path: []string{path}}, nil
	}
	return Field{Root: RootData, Path: strings.Split(path, ".")}, nil
}
