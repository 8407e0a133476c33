// Command foundry-control-plane runs a throw-away Kubernetes control plane on loopback for the cluster tier of the
// tests: etcd (embedded, go.etcd.io/etcd/server/v3/embed) and kube-apiserver (k8s.io/kubernetes's own command,
// app.NewAPIServerCommand) in one process, so that nothing outlives it.
//
// It makes a certificate authority, the API server's serving certificate (127.0.0.1, localhost), an admin client
// certificate (group system:masters) and the service-account signing key; starts etcd and the API server with RBAC
// authorization and service-account tokens on free loopback ports; waits until /readyz answers; creates the
// CustomResourceDefinitions found in --crds and waits until each is Established; and only then writes the admin
// kubeconfig, so the file's appearance means "ready". It runs until it gets SIGTERM or SIGINT, or its parent dies.
//
//	foundry-control-plane --dir DIR [--crds DIR] [--timeout 120s]
//	foundry-control-plane --version
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	_ "time/tzdata" // as kube-apiserver's own main: time zones for CronJob validation

	etcdversion "go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/server/v3/embed"
	"golang.org/x/sys/unix"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // as kube-apiserver's own main
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // as kube-apiserver's own main
	_ "k8s.io/component-base/metrics/prometheus/version"  // as kube-apiserver's own main
	kubeversion "k8s.io/component-base/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func init() {
	// Die with the parent (the test runner): a killed runner must not leave a control plane behind. init runs on
	// the main thread, whose parent-death signal is the one the kernel checks.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "foundry-control-plane: cannot set the parent-death signal: %v\n", err)
		os.Exit(1)
	}
	if os.Getppid() == 1 {
		os.Exit(1)
	}
}

func main() {
	dir := flag.String("dir", "", "state directory: etcd data, certificates, logs and admin.kubeconfig (created)")
	crds := flag.String("crds", "", "directory of CustomResourceDefinition manifests (*.yaml, *.json) to create")
	timeout := flag.Duration("timeout", 120*time.Second, "how long to wait for readiness and for each CRD")
	showVersion := flag.Bool("version", false, "print the versions of kube-apiserver and etcd, then exit")
	flag.Parse()
	if *showVersion {
		fmt.Printf("kube-apiserver %s, etcd %s\n", kubeversion.Get().GitVersion, etcdversion.Version)
		return
	}
	if *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: foundry-control-plane --dir DIR [--crds DIR] [--timeout DURATION]")
		os.Exit(2)
	}
	if err := run(*dir, *crds, *timeout); err != nil {
		fmt.Fprintf(os.Stderr, "foundry-control-plane: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, crdDir string, timeout time.Duration) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	creds, err := writePKI(pki)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]

	etcd, err := startEtcd(filepath.Join(dir, "etcd"), etcdClient, etcdPeer, timeout)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()

	server := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	ready := make(chan error, 1)
	go func() { ready <- whenReady(server, creds, crdDir, kubeconfig, timeout) }()
	go func() {
		if err := <-ready; err != nil {
			fmt.Fprintf(os.Stderr, "foundry-control-plane: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("ready: %s\n", kubeconfig)
	}()

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs([]string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdClient),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		// No Service endpoints to publish: a loopback address is not a valid endpoint, and nothing routes here.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	})
	if code := cli.Run(cmd); code != 0 {
		return fmt.Errorf("kube-apiserver exited with code %d", code)
	}
	return nil
}

// credentials are the PEM blocks a kubeconfig embeds.
type credentials struct {
	ca, adminCert, adminKey []byte
}

// writePKI writes ca.crt, apiserver.crt/.key and the service-account key pair sa.key/sa.pub into dir and returns the admin's credentials.
func writePKI(dir string) (credentials, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return credentials{}, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "foundry-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return credentials{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return credentials{}, err
	}
	issue := func(serial int64, subject pkix.Name, usage x509.ExtKeyUsage, ips []net.IP, names []string) ([]byte, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		template := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      subject,
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(48 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
			DNSNames:     names,
		}
		der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		keyPEM, err := pkcs8(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, err
	}
	servingCert, servingKey, err := issue(2, pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost", "kubernetes", "kubernetes.default.svc"})
	if err != nil {
		return credentials{}, err
	}
	adminCert, adminKey, err := issue(3, pkix.Name{CommonName: "foundry-admin", Organization: []string{"system:masters"}},
		x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return credentials{}, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return credentials{}, err
	}
	saPEM, err := pkcs8(saKey)
	if err != nil {
		return credentials{}, err
	}
	saPublic, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return credentials{}, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for name, content := range map[string][]byte{
		"ca.crt": caPEM, "apiserver.crt": servingCert, "apiserver.key": servingKey, "sa.key": saPEM,
		"sa.pub": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPublic}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			return credentials{}, err
		}
	}
	return credentials{ca: caPEM, adminCert: adminCert, adminKey: adminKey}, nil
}

func pkcs8(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// freePorts reserves n loopback ports at once (so they differ) and releases them for the servers to bind.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("no free loopback port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func startEtcd(dir string, clientPort, peerPort int, timeout time.Duration) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPort))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(peerPort))}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// The data is thrown away with the process: durability buys nothing and costs every write an fsync.
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(timeout):
		e.Close()
		return nil, fmt.Errorf("not ready within %s", timeout)
	}
}

// whenReady waits for /readyz, creates the CRDs and waits until they are Established, then writes the kubeconfig.
func whenReady(server string, creds credentials, crdDir, kubeconfig string, timeout time.Duration) error {
	cert, err := tls.X509KeyPair(creds.adminCert, creds.adminKey)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(creds.ca)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}},
	}
	deadline := time.Now().Add(timeout)
	for last := ""; ; time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get(server + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready within %s (last answer: %s)", timeout, last)
		}
	}
	config := &rest.Config{
		Host:            server,
		TLSClientConfig: rest.TLSClientConfig{CAData: creds.ca, CertData: creds.adminCert, KeyData: creds.adminKey},
		QPS:             100,
		Burst:           200,
	}
	if crdDir != "" {
		if err := installCRDs(config, crdDir, timeout); err != nil {
			return err
		}
	}
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: foundry-test
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: admin
  context:
    cluster: foundry-test
    user: admin
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
`, server, b64(creds.ca), b64(creds.adminCert), b64(creds.adminKey))
	// Written whole, then renamed: a reader never sees half a file.
	staged := kubeconfig + ".partial"
	if err := os.WriteFile(staged, []byte(text), 0o600); err != nil {
		return err
	}
	return os.Rename(staged, kubeconfig)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// installCRDs creates every CustomResourceDefinition in dir's *.yaml and *.json files (in name order, several
// documents per file) and waits until each is Established.
func installCRDs(config *rest.Config, dir string, timeout time.Duration) error {
	clientset, err := apiextensions.NewForConfig(config)
	if err != nil {
		return err
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, f := range files {
		if ext := filepath.Ext(f.Name()); !f.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			names = append(names, f.Name())
		}
	}
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var created []string
	for _, name := range names {
		path := filepath.Join(dir, name)
		file, err := os.Open(path)
		if err != nil {
			return err
		}
		decoder := yaml.NewYAMLOrJSONDecoder(file, 4096)
		for {
			var crd apiextensionsv1.CustomResourceDefinition
			err := decoder.Decode(&crd)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				file.Close()
				return fmt.Errorf("%s: %w", path, err)
			}
			if crd.Kind == "" && crd.Name == "" {
				continue // an empty document
			}
			if crd.Kind != "CustomResourceDefinition" {
				file.Close()
				return fmt.Errorf("%s: `%s %s` is not a CustomResourceDefinition", path, crd.Kind, crd.Name)
			}
			if _, err := clientset.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				file.Close()
				return fmt.Errorf("%s: creating CRD %s: %w", path, crd.Name, err)
			}
			created = append(created, crd.Name)
		}
		file.Close()
	}
	for _, name := range created {
		for {
			crd, err := clientset.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("CRD %s: %w", name, err)
			}
			if established(crd) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("CRD %s not Established within %s: %v", name, timeout, crd.Status.Conditions)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	fmt.Printf("crds: %d established\n", len(created))
	return nil
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
