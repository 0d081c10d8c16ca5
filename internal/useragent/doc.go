// Package useragent turns a User-Agent header into the browser and
// operating system a person recognises ("Firefox 128", "Windows"), for the
// account page and the sessions CLI. It knows only the common browsers and
// systems and is deliberately small: it labels sessions for people, it does
// not detect features or make security decisions.
//
// It imports nothing of Gatehouse's and must stay that way.
package useragent
