package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"time"
)

// TarFile is one file of a tarball.
type TarFile struct {
	Name string
	Mode int64
	Body []byte
}

// Tarball is files as a gzipped tar in their order. Every header is fixed
// (owner, mode, modTime: the commit's), and gzip records no name or time:
// the same files give the same bytes.
func Tarball(files []TarFile, modTime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, Mode: f.Mode, Size: int64(len(f.Body)), ModTime: modTime.UTC(), Typeflag: tar.TypeReg, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
