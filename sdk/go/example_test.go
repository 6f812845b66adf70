package tandem_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// The examples run against a tandem server that TestMain starts; in your
// program the URL is your server's, e.g. "http://127.0.0.1:8080".

func ExampleConn_Subscribe() {
	ctx := context.Background()
	c, err := tandem.New(exampleURL)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.EnsureCollection(ctx, "example-orders"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Put(ctx, "example-orders", "o-1", map[string]any{"item": "tea"}, nil); err != nil {
		log.Fatal(err)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	// The current state, then synced, then live changes.
	sub, err := conn.Subscribe(ctx, tandem.CollectionTopic("example-orders"), &tandem.SubscribeOptions{Snapshot: true})
	if err != nil {
		log.Fatal(err)
	}
	for ev := range sub.Events() {
		switch ev.Type {
		case tandem.TypeEvent:
			fmt.Println(ev.Event, ev.Resource.Id, string(ev.Resource.Data))
		case tandem.TypeSynced:
			fmt.Println("synced")
			if _, err := c.Put(ctx, "example-orders", "o-2", map[string]any{"item": "coffee"}, nil); err != nil {
				log.Fatal(err)
			}
		}
		if ev.Event == "resource.created" {
			break
		}
	}
	// Output:
	// resource.snapshot o-1 {"item":"tea"}
	// synced
	// resource.created o-2 {"item":"coffee"}
}

func ExampleConn_Publish() {
	ctx := context.Background()
	c, err := tandem.New(exampleURL)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	got := make(chan string, 1)
	_, err = conn.SubscribeFunc(ctx, tandem.ChannelTopic("example:room"), nil, func(ev tandem.Event) {
		got <- string(ev.Message.Data)
	})
	if err != nil {
		log.Fatal(err)
	}
	// The reply is the stored message, with its offset and cursor.
	m, err := conn.Publish(ctx, "example:room", map[string]string{"text": "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published offset", m.Offset)
	fmt.Println("received", <-got)
	// Output:
	// published offset 1
	// received {"text":"hello"}
}

func ExampleConn_Mirror() {
	ctx := context.Background()
	c, err := tandem.New(exampleURL)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.EnsureCollection(ctx, "example-stock"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Put(ctx, "example-stock", "apples", map[string]int{"count": 3}, nil); err != nil {
		log.Fatal(err)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	// A local copy that follows every change across reconnects.
	changed := make(chan struct{}, 10)
	m, err := conn.Mirror(ctx, "example-stock", &tandem.MirrorOptions{
		OnEvent: func(*tandem.Mirror, tandem.Event) { changed <- struct{}{} },
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.WaitSynced(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Len(), "item(s)")
	if _, err := c.Put(ctx, "example-stock", "pears", map[string]int{"count": 5}, nil); err != nil {
		log.Fatal(err)
	}
	for m.Len() < 2 {
		<-changed
	}
	for _, r := range m.Items() {
		fmt.Println(r.Id, string(r.Data))
	}
	// Output:
	// 1 item(s)
	// apples {"count":3}
	// pears {"count":5}
}

// A subscription resuming from a stored cursor ends with a
// *ResyncRequiredError when the server no longer has that history; reload
// with a snapshot and carry on.
func ExampleResyncRequiredError() {
	ctx := context.Background()
	c, err := tandem.New("http://127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	saved, _ := os.ReadFile("orders.cursor")
	topic := tandem.CollectionTopic("orders")
	sub, err := conn.Subscribe(ctx, topic, &tandem.SubscribeOptions{Since: string(saved)})
	for {
		if errors.Is(err, tandem.ErrResyncRequired) {
			sub, err = conn.Subscribe(ctx, topic, &tandem.SubscribeOptions{Snapshot: true})
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		state := map[string]string{}
		for ev := range sub.Events() {
			switch ev.Type {
			case tandem.TypeReset: // a snapshot follows
				clear(state)
			case tandem.TypeEvent:
				state[ev.Resource.Id] = string(ev.Resource.Data)
				_ = os.WriteFile("orders.cursor", []byte(ev.Cursor), 0o600)
			}
		}
		err = sub.Err() // the subscription ended: why?
	}
}

// An RPC returns the data of the application's result, or its problem.
// (Not run: it needs a server with an RPC hook.)
func ExampleConn_RPC() {
	ctx := context.Background()
	c, err := tandem.New("http://127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	res, err := conn.RPC(ctx, "game:move", map[string]string{"from": "e2", "to": "e4"})
	var pe *tandem.ProblemError
	switch {
	case errors.Is(err, tandem.ErrConnectionLost):
		// Sent, but the connection dropped before the reply: the move may
		// or may not have been made; the SDK does not send it again.
		log.Print("move outcome unknown: ", err)
	case errors.As(err, &pe):
		log.Printf("move refused: %s (%s)", pe.Problem.Title, pe.Slug())
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println(string(res))
	}
}

// Subscriptions the server makes (e.g. its connect hook subscribing each
// user to a personal channel) arrive at the WithServerSubscriptions
// callback. A disconnect that forbids reconnecting ends the Conn with a
// *DisconnectedError. (Not run: it needs a server that makes them.)
func ExampleWithServerSubscriptions() {
	ctx := context.Background()
	c, err := tandem.New("http://127.0.0.1:8080",
		tandem.WithServerSubscriptions(func(sub *tandem.Subscription) {
			// Called from the connection's reader: do not block here.
			go func() {
				for ev := range sub.Events() {
					fmt.Println(sub.Topic(), ev.Event, ev.Cursor)
				}
				// ErrUnsubscribedByServer, or ErrConnectionLost: the SDK
				// does not make it again after a reconnect.
				log.Printf("%s ended: %v", sub.Topic(), sub.Err())
			}()
		}))
	if err != nil {
		log.Fatal(err)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	<-conn.Done()
	var de *tandem.DisconnectedError
	if errors.As(conn.Err(), &de) {
		log.Printf("disconnected by the server: %q; not reconnecting", de.Reason)
	}
}

// Tokens from a TokenSource are presented on every dial and refreshed
// in-band before they expire, so the connection outlives each token.
func ExampleWithTokenSource() {
	fetch := func(ctx context.Context) (string, error) {
		return os.Getenv("TANDEM_TOKEN"), nil // e.g. from your identity provider
	}
	c, err := tandem.New("http://127.0.0.1:8080",
		tandem.WithTokenSource(fetch),
		tandem.WithBackoff(tandem.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}),
		tandem.WithStatus(func(s tandem.Status) { log.Printf("tandem: %s %v", s.State, s.Err) }),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = c
}

func ExampleVerifyWebhook() {
	// The webhook's secret, shown once when it was created.
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		// Verify the raw body, before decoding it.
		if err := tandem.VerifyWebhook(secret, r.Header, body); err != nil {
			http.Error(w, "invalid webhook", http.StatusUnauthorized)
			return
		}
		// Handle the event(s) in body. A 2xx acknowledges them; webhook-id
		// lets you skip a delivery retried after you had handled it.
		w.WriteHeader(http.StatusNoContent)
	})

	// Serve it with http.ListenAndServe; here, one delivery as tandem
	// sends it, and one forged.
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, signedRequest(secret, "evt_1", `{"type":"resource.created"}`))
	fmt.Println(rec.Code)
	forged := signedRequest("whsec_"+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "evt_1", `{"type":"resource.created"}`)
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, forged)
	fmt.Println(rec.Code)
	// Output:
	// 204
	// 401
}
