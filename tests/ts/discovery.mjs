// The official MCP TypeScript SDK's discovery, run against a live MCP server: the 401 challenge,
// the protected resource metadata, the resource check that once failed ("Protected resource ...
// does not match expected ..."), and the authorization server metadata. Prints one JSON line.
// Usage: NODE_EXTRA_CA_CERTS=<stand-in CA> node discovery.mjs <MCP server URL>
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
  selectResourceURL,
} from "@modelcontextprotocol/sdk/client/auth.js";

const serverUrl = process.argv[2];
const challenge = await fetch(serverUrl, {
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
});
const params = extractWWWAuthenticateParams(challenge);
const metadata = await discoverOAuthProtectedResourceMetadata(serverUrl, {
  resourceMetadataUrl: params.resourceMetadataUrl,
});
const resource = await selectResourceURL(serverUrl, {}, metadata);
const server = await discoverAuthorizationServerMetadata(metadata.authorization_servers[0]);
console.log(
  JSON.stringify({
    status: challenge.status,
    resourceMetadataUrl: params.resourceMetadataUrl?.href ?? null,
    scope: params.scope ?? null,
    resource: metadata.resource,
    selectedResource: resource?.href ?? null,
    authorizationEndpoint: server?.authorization_endpoint ?? null,
    registrationEndpoint: server?.registration_endpoint ?? null,
    codeChallengeMethods: server?.code_challenge_methods_supported ?? [],
  }),
);
