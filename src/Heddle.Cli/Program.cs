using Heddle.Cli;

return HeddleCli.Run(args, Console.Out, Console.Error);
