from tests.api.conftest import body


def test_smoke(trial, data_manager, token, api):
    client = api(token(data_manager))
    r = client.get("/api/v1/metadata/")
    assert r.status_code == 200, r.content
    r = client.get("/api/v1/records/", {"shape": "long", "format": "csv"})
    assert r.status_code == 200
    print(body(r)[:300])
    r = client.get("/api/v1/status/")
    assert r.status_code == 200, r.content
    r = client.get("/api/v1/queries/")
    assert r.status_code == 200, r.content
    r = client.get("/api/v1/schema/")
    assert r.status_code == 200, r.content
