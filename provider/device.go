package provider

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/opkssh-team/opkssh/internal/qrterm"
)

// The device-code login (RFC 8628) is for machines without a browser: the OP hands out a short
// user code, the user enters it on any other device at the OP's verification page, and we poll
// the token endpoint meanwhile, at the interval the OP asks for.
//
// RFC 8628 has no nonce, yet the ID token must commit to our key. We send the commitment as the
// "nonce" parameter of the device authorization request, which OPs such as Keycloak carry into
// the ID token. Others (Dex, Zitadel) drop it: their device-login ID tokens have no nonce claim,
// DeviceLogin fails with ErrDeviceNonceDropped, and only the browser login can work with them.

// ErrDeviceNonceDropped means the OP issued the device login's ID token without the nonce.
var ErrDeviceNonceDropped = errors.New("the OP left the nonce out of the device login's ID token (Dex and Zitadel do this: the device-code standard has no nonce), so the token cannot be bound to your key and device login cannot work with this OP. " +
	"Log in through the browser instead: \"opkssh login\" on a machine with a browser, or here \"opkssh login --no-browser\", open the OP's URL it prints in a browser on any machine, and paste back the address that browser ends on (http://localhost:3000/login-callback?...)")

// ErrNoDeviceEndpoint means the OP's discovery document has no device_authorization_endpoint.
var ErrNoDeviceEndpoint = errors.New("the OP does not offer device-code login (its discovery document has no device_authorization_endpoint); use the browser login, with --no-browser on a remote machine")

// DeviceLogin runs the device-code login and returns a PK token committing to opts.Signer's key.
// opts.OpenBrowser is not used. It blocks until the user approves or denies the login, the code
// expires, or ctx ends.
func DeviceLogin(ctx context.Context, cfg Config, opts LoginOptions) (*LoginResult, error) {
	st, err := start(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	cfg, status, octx, op, cic, nonce := st.cfg, st.status, st.octx, st.op, st.cic, st.nonce
	endpoint := op.Endpoint()
	if endpoint.DeviceAuthURL == "" {
		return nil, ErrNoDeviceEndpoint
	}
	params := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("nonce", nonce)}
	if cfg.ClientSecret == "" {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	} else {
		// The device authorization request is not a token request: oauth2 sends no secret with
		// it, but OPs that treat the client as confidential (Google) want one.
		params = append(params, oauth2.SetAuthURLParam("client_secret", cfg.ClientSecret))
	}
	oc := oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: endpoint, Scopes: cfg.Scopes}
	da, err := oc.DeviceAuth(octx, params...)
	if err != nil {
		return nil, offlineHint(fmt.Errorf("the OP refused the device login request: %w", oauthError(err)), st.offline)
	}
	fmt.Fprintf(status, "To log in at %s, open this page on any device:\n  %s\nand enter the code:\n  %s\n", cfg.Issuer, da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(status, "(or open %s, which fills in the code)\n", da.VerificationURIComplete)
	}
	printQR(status, opts.QRWidth, cmp.Or(da.VerificationURIComplete, da.VerificationURI))
	fmt.Fprintln(status, "Waiting for the login to be approved (Ctrl-C to cancel)...")

	tok, err := oc.DeviceAccessToken(octx, da)
	if err != nil {
		return nil, deviceError(ctx, err)
	}
	res := verifyIDToken(octx, op.Verifier(&oidc.Config{ClientID: cfg.ClientID}), tok, nonce)
	if errors.Is(res.err, ErrNoNonce) {
		return nil, ErrDeviceNonceDropped
	}
	if res.err != nil {
		return nil, res.err
	}
	return assemble(cic, opts, res)
}

// printQR shows url as a QR code for a phone to scan, if it fits in width columns.
func printQR(status io.Writer, width int, url string) {
	if width <= 0 {
		return
	}
	code, err := qrterm.Render(url)
	if err != nil || code.Width > width {
		return
	}
	fmt.Fprintf(status, "or scan this with a phone:\n%s", code)
}

// deviceError explains why polling ended without a token.
func deviceError(ctx context.Context, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "access_denied":
			return errors.New("the login was denied at the OP (access_denied)")
		case "expired_token":
			return errors.New("the code expired before the login was approved; run the command again")
		}
		return fmt.Errorf("the OP refused the device login: %w", oauthError(err))
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return errors.New("timed out waiting for the device login; run the command again (use --timeout to wait longer)")
	case ctx.Err() != nil:
		return errors.New("login cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("the code expired before the login was approved; run the command again")
	}
	return fmt.Errorf("polling the OP for the device login: %w", err)
}

// oauthError shortens an OAuth error response to its code and description.
func oauthError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		if re.ErrorDescription != "" {
			return fmt.Errorf("%s: %s", re.ErrorCode, re.ErrorDescription)
		}
		return errors.New(re.ErrorCode)
	}
	return err
}
