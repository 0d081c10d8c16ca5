// Package ui renders the pages people see in a browser (sign-in, consent,
// errors, the home page), translates their text, picks the language, and
// protects forms against cross-site request forgery.
//
// Handlers build a Page value (LoginPage, ConsentPage, ErrorPage, HomePage),
// pick a Locale with Negotiate, and call Renderer.Render. Every form a page
// contains carries the token from CSRF.Token; the handler that receives the
// POST checks it with CSRF.Verify before doing anything else.
//
// The templates, stylesheet and message catalogs are embedded by package
// web. All user-facing text comes from the catalogs (English and Simplified
// Chinese); values that come from users or clients (names, emails, error
// details) only ever pass through html/template's contextual escaping.
//
// Pages contain no JavaScript and no inline styles: the Content-Security-
// Policy that Render sends forbids both.
//
// This package imports only package web, the standard library and
// golang.org/x/text. It knows nothing of OAuth, storage or sessions.
package ui
