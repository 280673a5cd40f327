package mmapfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenAndMap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	want := bytes.Repeat([]byte("gotd"), 5000)
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil || !bytes.Equal(f.Data, want) || !f.mapped {
		t.Fatalf("Open = %d bytes, mapped %v, %v; want %d mapped bytes", len(f.Data), f.mapped, err, len(want))
	}
	// The mapping outlives the file's name.
	os.Remove(path)
	if !bytes.Equal(f.Data, want) {
		t.Errorf("mapping changed after the file was removed")
	}
	if err := f.Close(); err != nil || f.Data != nil {
		t.Errorf("Close = %v, Data %v; want nil, nil", err, f.Data)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}

	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	if f, err := Open(empty); err != nil || len(f.Data) != 0 {
		t.Errorf("Open(empty) = %v, %v", f, err)
	}
	if _, err := Map(empty); err == nil {
		t.Errorf("Map(empty) succeeded; want an error")
	}
	if _, err := Open(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("Open(missing) err = %v; want not-exist", err)
	}
	if err := Unmap(nil); err != nil {
		t.Errorf("Unmap(nil) = %v", err)
	}
}
