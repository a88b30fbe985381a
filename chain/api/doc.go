// Package api serves the data directory's reads over HTTP/JSON, the role a
// separate indexer ("query node") plays elsewhere: apps ask a Satchel node
// directly. Each request becomes a query on a chain.Transport; over a
// verify.Transport every answer is proven against validator-signed headers
// before it is served, so the API is as trustworthy as the validators, not
// as the node behind it. Lists are paged (cursor, limit).
//
//	vt, _ := verify.New(ctx, transport, trust)
//	http.ListenAndServe("127.0.0.1:8080", api.NewHandler(vt))
//
// Routes (GET; JSON answers as chain.Client returns them):
//
//	/api/v1/info                              chain ID, height, app hash
//	/api/v1/params                            leads, limits, policies
//	/api/v1/validators                        the validator set
//	/api/v1/app-version                       app version, scheduled upgrade
//	/api/v1/bags?cursor=&limit=               a page of bags
//	/api/v1/bags/{bag}                        one bag
//	/api/v1/bags/{bag}/objects?cursor=&limit= a page of the bag's objects
//	/api/v1/bags/{bag}/objects/{id}           one object
//	/api/v1/objects/{id}                      one object, whichever bag holds it
//	/api/v1/objects/pending?bag=&cursor=&limit=    objects pending acceptance
//	/api/v1/objects/by-content-id/{cid}?cursor=&limit=
//	/api/v1/storage/buckets/{id}              one storage bucket
//	/api/v1/storage/buckets/{id}/bags?cursor=&limit=
//	/api/v1/workers/{group}/{id}/buckets?cursor=&limit=
//
// Errors are {"error": message, "code": runtime code}: 400 for a bad
// argument, 404 for something missing, 502 when the node's answer failed
// verification or the node does not know the query (an older binary), 500
// otherwise.
package api
