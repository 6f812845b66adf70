package webhook_test

import (
	"encoding/json"
	"testing"

	"github.com/tandemhq/tandem/internal/app"
)

// TestWebhookCollectionUpdated: a webhook on a collection topic, with a
// label selector, gets the collection.updated event of a PATCH in cursor
// order with the resource events; its body matches the spec.
func TestWebhookCollectionUpdated(t *testing.T) {
	g := newRig(t, nil)
	rcv := newReceiver(t, nil)
	w := g.create(t, app.WebhookSpec{Topic: "collections/orders/resources", Labels: "parity=even", URL: rcv.srv.URL})
	rcv.setSecrets(w.NewSecret)
	g.write(t, 1) // parity=even: delivered
	c, err := g.a.UpdateCollection(t.Context(), everyone, "orders", json.RawMessage(`{"description":"shop"}`), app.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two deliveries", func() bool { return len(rcv.events(t, true)) >= 2 })
	evs := rcv.events(t, true)
	if evs[0].Event != "resource.created" || evs[1].Event != "collection.updated" || evs[1].Collection == nil ||
		evs[1].Collection.Revision != c.Revision || evs[1].Resource != nil || evs[1].Labels != "parity=even" {
		t.Fatalf("deliveries = %+v, want the resource then the collection change", evs)
	}
}
