package app

import "github.com/tandemhq/tandem/internal/auth"

// everyone may do everything (auth not configured).
var everyone = auth.Principal{Kind: auth.KindAnonymous, Grants: auth.AllowAll()}
