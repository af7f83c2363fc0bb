package verifier

import (
	"testing"
)

// FuzzParseJWKS: the JWKS parser sees whatever an OP (or whoever answers in its place) sends. It
// must never panic, and what it keeps must be usable signing keys: RSA, EC or OKP, none marked
// for encryption, each of which it can explain having kept, and every key it leaves out named.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"AKP","alg":"ML-DSA-44","pub":"AAAA"},{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, skipped, err := parseJWKSReport(data)
		if err != nil {
			if set != nil {
				t.Fatal("an error with a key set")
			}
			return
		}
		if set.Len() == 0 {
			t.Fatal("no error and no key")
		}
		if set.Len()+len(skipped) > maxJWKSKeys {
			t.Fatalf("%d keys kept and %d left out, more than the %d read", set.Len(), len(skipped), maxJWKSKeys)
		}
		for i := range set.Len() {
			k, _ := set.Key(i)
			switch k.KeyType().String() {
			case "RSA", "EC", "OKP":
			default:
				t.Fatalf("kept a key of type %s", k.KeyType())
			}
			if use, ok := k.KeyUsage(); ok && use != "sig" {
				t.Fatalf("kept a key for %q", use)
			}
		}
	})
}
