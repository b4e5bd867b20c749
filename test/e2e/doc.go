// Package e2e holds the end-to-end tests of certkeeper: the real binary,
// built once per test run, serving its API against a real Pebble ACME CA and
// a real BIND9 server that takes TSIG-signed dynamic updates, on SQLite and
// on PostgreSQL. The tests are in the _test.go files; this package has no
// other code.
package e2e
