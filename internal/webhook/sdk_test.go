package webhook

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/app"
	tandem "github.com/tandemhq/tandem/sdk/go"
)

// TestSendVerifiesWithSDK checks that the Go SDK's VerifyWebhook accepts
// what Send signs, with either key of a rotation, so sender and verifier
// cannot drift apart.
func TestSendVerifiesWithSDK(t *testing.T) {
	newKey, oldKey := []byte("0123456789abcdef01234567"), []byte("fedcba9876543210fedcba9876543210")
	errs := make(chan [2]error, 1)
	srv := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		errs <- [2]error{
			tandem.VerifyWebhook("whsec_"+base64.StdEncoding.EncodeToString(newKey), r.Header, body),
			tandem.VerifyWebhook(base64.StdEncoding.EncodeToString(oldKey), r.Header, body),
		}
	})
	s := sender(t, Options{AllowPrivate: true})
	res := s.Send(context.Background(), app.WebhookRequest{URL: srv.URL, ID: "evt_1", Body: []byte(`{"a":1}`), Keys: [][]byte{newKey, oldKey}, Timeout: 5 * time.Second})
	if res.Err != nil || res.Status != http.StatusOK {
		t.Fatalf("Send = %+v", res)
	}
	for i, err := range <-errs {
		if err != nil {
			t.Errorf("VerifyWebhook with key %d: %v", i, err)
		}
	}
}
