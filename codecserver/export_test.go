package codecserver

// Verifications returns how many tokens a has checked by signature.
func Verifications(a *JWTAuthenticator) int64 { return a.verifications.Load() }

// RememberedTokens returns how many verified tokens a remembers.
func RememberedTokens(a *JWTAuthenticator) int {
	if a.verified == nil {
		return 0
	}
	a.verified.mu.Lock()
	defer a.verified.mu.Unlock()
	return len(a.verified.m)
}
