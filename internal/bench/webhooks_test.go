package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWebhookReceiver drives the bench's receiver with signed requests:
// single events and batches are counted once per benchN, repeats as
// duplicates, and bad signatures, bodies and foreign events as errors.
func TestWebhookReceiver(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	rv, err := startReceiver(4, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rv.close()
	rv.setSecret(secret)
	rv.startMeasuring()
	sent := time.Now().Add(-time.Millisecond).UnixNano()
	ev := func(n int) string {
		return `{"type":"event","topic":"collections/c/resources","event":"resource.created","cursor":"c` + strconv.Itoa(n) +
			`","resource":{"id":"r","data":{"benchT":` + strconv.FormatInt(sent, 10) + `,"benchN":` + strconv.Itoa(n) + `}}}`
	}
	post := func(body string, sign []byte) int {
		t.Helper()
		req, _ := http.NewRequest("POST", rv.url, strings.NewReader(body))
		id, ts := "msg_1", strconv.FormatInt(time.Now().Unix(), 10)
		m := hmac.New(sha256.New, sign)
		m.Write([]byte(id + "." + ts + "." + body))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		body   string
		key    []byte
		status int
	}{
		{ev(0), key, 204},
		{"[" + ev(1) + "," + ev(2) + "]", key, 204},
		{ev(2), key, 204}, // a duplicate
		{ev(3), []byte("another key, 24+ bytes long"), 401}, // not verified, not counted
		{`{"type":"webhook.ping"}`, key, 204},               // unexpected
		{ev(9), key, 204},                                   // outside the run
		{"[1,", key, 400},                                   // not JSON
	} {
		if got := post(tc.body, tc.key); got != tc.status {
			t.Errorf("%.40s…: HTTP %d, want %d", tc.body, got, tc.status)
		}
	}
	var res Result
	rv.report(&res)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.distinct != 3 || res.Duplicates != 1 || rv.requests != 5 || rv.lat.Count() != 3 || rv.lat.Max() <= 0 {
		t.Errorf("distinct %d, duplicates %d, requests %d, latencies %d (max %s); want 3, 1, 5, 3",
			rv.distinct, res.Duplicates, rv.requests, rv.lat.Count(), rv.lat.Max())
	}
	want := map[string]uint64{"webhook verify": 1, "webhook unexpected event": 2, "webhook body": 1}
	if len(res.Errors) != len(want) {
		t.Errorf("errors %v, want %v", res.Errors, want)
	}
	for k, v := range want {
		if res.Errors[k] != v {
			t.Errorf("errors %v, want %v", res.Errors, want)
			break
		}
	}
}
