// A real OpenID Provider for jwt-guard's e2e tests: oidc-provider (pinned in package.json),
// on 127.0.0.1:$PORT, with its development login and consent pages, the client-credentials
// grant, DPoP, and resource servers that get JWT access tokens signed RS256, ES256 and EdDSA,
// and one that gets opaque tokens, which the resource server `api` (client_secret_basic) may
// introspect (RFC 7662) and `app` may revoke (RFC 7009). Keys are made at start-up. Prints
// "ready <issuer>".
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const base = process.env.API_BASE || 'https://api.jwt-guard.test';
const resources = {
  [`${base}/rs`]: { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } },
  [`${base}/es`]: { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } },
  [`${base}/ed`]: { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'EdDSA' } } },
  [`${base}/opaque`]: { accessTokenFormat: 'opaque' },
  [`${base}/opaque-other`]: { accessTokenFormat: 'opaque' },
};

function jwk(type, options, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig' };
}

const configuration = {
  clients: [{
    client_id: 'app',
    client_secret: 'app-secret',
    redirect_uris: ['http://127.0.0.1/cb'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'openid offline_access read:items',
  }, {
    // The API itself: it only introspects.
    client_id: 'api',
    client_secret: process.env.API_SECRET || 'api-secret',
    redirect_uris: [],
    grant_types: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: {
    keys: [
      jwk('rsa', { modulusLength: 2048 }, 'op-rsa'),
      jwk('ec', { namedCurve: 'P-256' }, 'op-ec'),
      jwk('ed25519', {}, 'op-ed'),
    ],
  },
  scopes: ['openid', 'offline_access', 'read:items'],
  pkce: { required: () => false },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        const info = resources[indicator];
        if (!info) throw new Error(`unknown resource ${indicator}`);
        return { scope: 'read:items', audience: indicator, ...info };
      },
    },
  },
  // Issue refresh tokens for the code flow (offline_access needs consent, which the test gives).
  issueRefreshToken: () => true,
  ttl: { ClientCredentials: 600, AccessToken: 600 },
};

const provider = new Provider(issuer, configuration);
provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
