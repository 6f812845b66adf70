package main

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker/redis/redistest"
	tandem "github.com/tandemhq/tandem/sdk/go"
)

// connIDs lists the connection IDs of a ConnectionList answer.
func connIDs(t *testing.T, body map[string]any) []string {
	t.Helper()
	var ids []string
	for _, it := range body["items"].([]any) {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}

func TestConnectionAPI(t *testing.T) {
	s := startAuthServer(t)
	admin := []string{"X-API-Key", testAdminKey}
	bearer := func(sub string) http.Header {
		return http.Header{"Authorization": {"Bearer " + mintTest(t, sub, "read:channels/chat:x/** publish:channels/chat:x/messages", time.Now().Add(time.Hour), testAudience)}}
	}
	bob1, bob2, carol := s.dialHeader(t, bearer("bob")), s.dialHeader(t, bearer("bob")), s.dialHeader(t, bearer("carol"))
	bob1.subscribe("channels/chat:x/messages", nil)

	// List: every connection, paginated, and by subject.
	resp, body := s.do(t, "GET", "/v1/connections?limit=2", "", "", admin...)
	if resp.StatusCode != 200 || len(body["items"].([]any)) != 2 || body["nextPageToken"] == nil {
		t.Fatalf("first page: %d %v", resp.StatusCode, body)
	}
	first := connIDs(t, body)
	resp, body = s.do(t, "GET", "/v1/connections?limit=2&pageToken="+url.QueryEscape(body["nextPageToken"].(string)), "", "", admin...)
	if resp.StatusCode != 200 || len(body["items"].([]any)) != 1 || body["nextPageToken"] != nil {
		t.Fatalf("second page: %d %v", resp.StatusCode, body)
	}
	if all := append(first, connIDs(t, body)...); !(all[0] < all[1] && all[1] < all[2]) {
		t.Fatalf("pages not in ID order: %v", all)
	}
	resp, body = s.do(t, "GET", "/v1/subjects/bob/connections", "", "", admin...)
	if resp.StatusCode != 200 || len(body["items"].([]any)) != 2 {
		t.Fatalf("bob's connections: %d %v", resp.StatusCode, body)
	}
	var subbed map[string]any
	for _, it := range body["items"].([]any) {
		c := it.(map[string]any)
		if c["subject"] != "bob" || c["node"] == "" || c["transport"] != "websocket" || c["remoteAddress"] == "" {
			t.Fatalf("connection entry: %v", c)
		}
		if len(c["subscriptions"].([]any)) == 1 {
			subbed = c
		}
	}
	if subbed == nil || subbed["subscriptions"].([]any)[0].(map[string]any)["topic"] != "channels/chat:x/messages" {
		t.Fatalf("bob1's subscription is not listed: %v", body)
	}
	// Without the admin grant: 403.
	if resp, _ := s.do(t, "GET", "/v1/connections", "", "", "Authorization", bearer("bob").Get("Authorization")); resp.StatusCode != 403 {
		t.Fatalf("list without admin: %d", resp.StatusCode)
	}

	// Server-side subscribe: both of bob's connections, even to a topic
	// their token cannot read; bob1's existing subscription is kept.
	resp, body = s.do(t, "POST", "/v1/subjects/bob/subscriptions", "application/json", `{"topic":"channels/news/messages"}`, admin...)
	if resp.StatusCode != 200 || body["connections"] != float64(2) {
		t.Fatalf("server subscribe: %d %v", resp.StatusCode, body)
	}
	for _, w := range []*wsClient{bob1, bob2} {
		f := w.nextOfType("subscribed", 5*time.Second)
		if f["topic"] != "channels/news/messages" || f["start"] != "live" {
			t.Fatalf("subscribed frame: %v", f)
		}
	}
	if resp, body := s.do(t, "POST", "/v1/channels/news/messages", "application/json", `{"data":{"headline":"hi"}}`, admin...); resp.StatusCode != 201 {
		t.Fatalf("publish news: %d %v", resp.StatusCode, body)
	}
	for _, w := range []*wsClient{bob1, bob2} {
		if ev := w.nextOfType("event", 5*time.Second); ev["topic"] != "channels/news/messages" {
			t.Fatalf("event: %v", ev)
		}
	}
	if resp, _ := s.do(t, "POST", "/v1/subjects/bob/subscriptions", "application/json", `{"topic":"collections/nope/resources"}`, admin...); resp.StatusCode != 404 {
		t.Fatalf("server subscribe to a missing collection: %d", resp.StatusCode)
	}
	resp, body = s.do(t, "DELETE", "/v1/subjects/bob/subscriptions?topic=channels/news/messages", "", "", admin...)
	if resp.StatusCode != 200 || body["connections"] != float64(2) {
		t.Fatalf("server unsubscribe: %d %v", resp.StatusCode, body)
	}
	for _, w := range []*wsClient{bob1, bob2} {
		if f := w.nextOfType("unsubscribed", 5*time.Second); f["topic"] != "channels/news/messages" {
			t.Fatalf("unsubscribed frame: %v", f)
		}
	}

	// Disconnect one connection, then a subject.
	resp, body = s.do(t, "GET", "/v1/subjects/carol/connections", "", "", admin...)
	carolID := connIDs(t, body)[0]
	resp, body = s.do(t, "DELETE", "/v1/connections/"+carolID+"?reason=maintenance", "", "", admin...)
	if resp.StatusCode != 200 || body["disconnected"] != float64(1) {
		t.Fatalf("disconnect carol: %d %v", resp.StatusCode, body)
	}
	if f := carol.nextOfType("disconnect", 5*time.Second); f["reason"] != "maintenance" || f["reconnect"] != true || f["code"] != float64(4003) {
		t.Fatalf("disconnect frame: %v", f)
	}
	if code := closeCode(carol.closeErr(5 * time.Second)); code != 4003 {
		t.Fatalf("carol's close code %d, want 4003", code)
	}
	if resp, _ := s.do(t, "DELETE", "/v1/connections/"+carolID, "", "", admin...); resp.StatusCode != 404 {
		t.Fatalf("disconnect a closed connection: %d", resp.StatusCode)
	}
	resp, body = s.do(t, "DELETE", "/v1/subjects/bob/connections?reconnect=false&reason=banned", "", "", admin...)
	if resp.StatusCode != 200 || body["disconnected"] != float64(2) {
		t.Fatalf("disconnect bob: %d %v", resp.StatusCode, body)
	}
	for _, w := range []*wsClient{bob1, bob2} {
		if f := w.nextOfType("disconnect", 5*time.Second); f["reconnect"] != false {
			t.Fatalf("disconnect frame: %v", f)
		}
		if code := closeCode(w.closeErr(5 * time.Second)); code != 4003 {
			t.Fatalf("bob's close code %d", code)
		}
	}
	waitUntil(t, 5*time.Second, "the closed connections to leave the list", func() bool {
		_, body := s.do(t, "GET", "/v1/connections", "", "", admin...)
		return len(body["items"].([]any)) == 0
	})
}

// TestConnectionAPIAcrossNodes subscribes and kicks a subject from node A
// while it is connected to node B (two nodes sharing a Redis broker).
func TestConnectionAPIAcrossNodes(t *testing.T) {
	dsn := freshPostgres(t)
	rs := redistest.Start(t)
	args := []string{"--store", dsn, "--broker", rs.URL(), "--redis-prefix", "tandem-conn-" + randomHex(4) + ":"}
	a, b := startAuthServer(t, args...), startAuthServer(t, args...)
	for _, n := range []*testServer{a, b} {
		waitReady(t, n, 200, "ok")
	}
	admin := []string{"X-API-Key", testAdminKey}
	bob := b.dialHeader(t, http.Header{"Authorization": {"Bearer " + mintTest(t, "bob", "read:collections/**", time.Now().Add(time.Hour), testAudience)}})
	var nodeB string
	waitUntil(t, 10*time.Second, "node A to list bob's connection on B", func() bool {
		resp, body := a.do(t, "GET", "/v1/subjects/bob/connections", "", "", admin...)
		if resp.StatusCode != 200 || body["unreachableNodes"] != nil || len(body["items"].([]any)) != 1 {
			return false
		}
		nodeB, _ = body["items"].([]any)[0].(map[string]any)["node"].(string)
		return true
	})
	if nodeB == "" {
		t.Fatal("bob's connection names no node")
	}
	// Server-side subscribe through A; a publish on A reaches bob on B.
	resp, body := a.do(t, "POST", "/v1/subjects/bob/subscriptions", "application/json", `{"topic":"channels/alerts/messages"}`, admin...)
	if resp.StatusCode != 200 || body["connections"] != float64(1) {
		t.Fatalf("subscribe through A: %d %v", resp.StatusCode, body)
	}
	bob.nextOfType("subscribed", 5*time.Second)
	if resp, _ := a.do(t, "POST", "/v1/channels/alerts/messages", "application/json", `{"data":"fire"}`, admin...); resp.StatusCode != 201 {
		t.Fatalf("publish on A: %d", resp.StatusCode)
	}
	if ev := bob.nextOfType("event", 5*time.Second); ev["message"].(map[string]any)["data"] != "fire" {
		t.Fatalf("event on B: %v", ev)
	}
	// The Go SDK on B honours a kick through A with reconnect=false: it
	// ends with the reason and does not come back.
	conn := sdkConnect(t, b, tandem.WithToken(mintTest(t, "sdkuser", "read:collections/**", time.Now().Add(time.Hour), testAudience)))
	waitUntil(t, 10*time.Second, "A to see the SDK's connection", func() bool {
		_, body := a.do(t, "GET", "/v1/subjects/sdkuser/connections", "", "", admin...)
		return len(body["items"].([]any)) == 1
	})
	if resp, body := a.do(t, "DELETE", "/v1/subjects/sdkuser/connections?reconnect=false&reason=maintenance", "", "", admin...); resp.StatusCode != 200 || body["disconnected"] != float64(1) {
		t.Fatalf("kick the SDK: %d %v", resp.StatusCode, body)
	}
	select {
	case <-conn.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the SDK did not stop after reconnect=false")
	}
	var de *tandem.DisconnectedError
	if !errors.As(conn.Err(), &de) || de.Reason != "maintenance" || de.Reconnect {
		t.Fatalf("SDK error %v", conn.Err())
	}
	// Done means the SDK is terminal; the server stopped listing the
	// connection before it sent the close the SDK saw.
	_, body = a.do(t, "GET", "/v1/subjects/sdkuser/connections", "", "", admin...)
	if n := len(body["items"].([]any)); n != 0 {
		t.Fatalf("the SDK came back: %d connections", n)
	}

	// Kick through A.
	resp, body = a.do(t, "DELETE", "/v1/subjects/bob/connections?reconnect=false&reason=banned", "", "", admin...)
	if resp.StatusCode != 200 || body["disconnected"] != float64(1) {
		t.Fatalf("disconnect through A: %d %v", resp.StatusCode, body)
	}
	if f := bob.nextOfType("disconnect", 5*time.Second); f["reconnect"] != false || f["reason"] != "banned" {
		t.Fatalf("disconnect frame: %v", f)
	}
	if code := closeCode(bob.closeErr(5 * time.Second)); code != 4003 {
		t.Fatalf("close code %d", code)
	}
}
