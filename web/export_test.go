package web

import "io/fs"

// Files exposes the embedded files to the tests.
func Files() fs.FS { return files }
