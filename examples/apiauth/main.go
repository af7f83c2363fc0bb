// Command apiauth is a small API server and its client, authenticated with opkssh keys through
// package apiauth: the client signs each request with the key of your opkssh login, the server
// checks the signature and the OIDC identity against a policy and answers who you are.
//
//	go run ./examples/apiauth serve --policy api.yaml [--listen 127.0.0.1:8443]
//	go run ./examples/apiauth call [--key-file ~/.ssh/id_ecdsa] [--data JSON] http://127.0.0.1:8443/whoami
//
// api.yaml is an opkssh policy whose signers section says who may call the API:
//
//	version: 1
//	providers:
//	  corp:
//	    issuer: https://sso.example.com
//	    client_ids: [opkssh]
//	signers:
//	  - provider: corp
//	    identities: [{email_domain: example.com}]
//
// The server listens on plain HTTP for the demonstration; the signature authenticates each
// request but does not encrypt it: put real services behind TLS.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opkssh-team/opkssh/apiauth"
	"github.com/opkssh-team/opkssh/policy"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: apiauth serve --policy FILE [--listen ADDR] | apiauth call [--key-file KEY] [--data JSON] URL")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "call":
		err = call(os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q (serve or call)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiauth:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	policyFile := fs.String("policy", "", "opkssh policy with a signers section (required)")
	listen := fs.String("listen", "127.0.0.1:8443", "address to listen on")
	fs.Parse(args)
	h, err := newHandler(*policyFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "listening on http://%s\n", *listen)
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// newHandler is the API: /whoami answers the verified caller; /echo returns the signed body.
func newHandler(policyFile string) (http.Handler, error) {
	if policyFile == "" {
		return nil, errors.New("--policy is required")
	}
	data, err := os.ReadFile(policyFile)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Parse(policyFile, data)
	if err != nil {
		return nil, err
	}
	v := &apiauth.Verifier{Policy: pol, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		id, _ := apiauth.IdentityFrom(r.Context())
		json.NewEncoder(w).Encode(id)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		id, _ := apiauth.IdentityFrom(r.Context())
		body, _ := io.ReadAll(r.Body)
		json.NewEncoder(w).Encode(map[string]any{"from": id.Email, "body": string(body)})
	})
	return v.Middleware(mux), nil
}

func call(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("call", flag.ExitOnError)
	keyFile := fs.String("key-file", "", "opkssh private key (default ~/.ssh/id_ecdsa)")
	body := fs.String("data", "", "send this as a POST body")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("call needs one URL")
	}
	if *keyFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		*keyFile = filepath.Join(home, ".ssh", "id_ecdsa")
	}
	signer, cert, err := apiauth.LoadKey(*keyFile)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &apiauth.Transport{Signer: signer, Cert: cert}, Timeout: 30 * time.Second}
	method := http.MethodGet
	var reqBody io.Reader
	if *body != "" {
		method, reqBody = http.MethodPost, strings.NewReader(*body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, fs.Arg(0), reqBody)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return nil
}
