package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	connectcors "connectrpc.com/cors"
	"github.com/chromedp/chromedp"
	"github.com/rs/cors"

	"github.com/corsgate/corsgate/example/web"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

func main() {
	g := &greetsvc.Greeter{Record: func(c greetsvc.Call) { fmt.Fprintf(os.Stderr, "CALL %s %s %v\n", c.Procedure, c.HTTPMethod, c.Header) }}
	mux := http.NewServeMux()
	mux.Handle(greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(g)))
	c := cors.New(cors.Options{
		AllowedOrigins: []string{"http://127.0.0.1:18081"},
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", "X-Request-Id"),
		ExposedHeaders: append(connectcors.ExposedHeaders(), "X-Greet-Version", "X-Greet-Trailer", "Trailer-X-Greet-Trailer"),
	})
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	go (&http.Server{Addr: "127.0.0.1:18080", Handler: c.Handler(mux), Protocols: &p}).ListenAndServe()
	go (&http.Server{Addr: "127.0.0.1:18081", Handler: http.FileServerFS(web.FS)}).ListenAndServe()
	time.Sleep(200 * time.Millisecond)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.Flag("disable-quic", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	ctx, cancel3 := context.WithTimeout(ctx, 60*time.Second)
	defer cancel3()
	script := os.Args[1]
	err := chromedp.Do(ctx,
		chromedp.Navigate("http://127.0.0.1:18081/?api=http://127.0.0.1:18080"),
		chromedp.Poll[chromedp.Void]("window.corsgateTest && window.corsgateTest.ready", chromedp.WithPollingInterval(50*time.Millisecond)),
	)
	if err != nil {
		fmt.Println("ERR", err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]json.RawMessage](script, chromedp.EvalAwaitPromise))
	if err != nil {
		fmt.Println("ERR", err)
	}
	for _, o := range out {
		fmt.Println(string(o))
	}
	if len(os.Args) > 2 {
		chromedp.Do(ctx, chromedp.EmulateViewport(1400, 900))
		chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.corsgateTest.runAll().then(()=>1)`, chromedp.EvalAwaitPromise))
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		fmt.Println(err)
		os.WriteFile(os.Args[2], buf, 0o644)
	}
}
